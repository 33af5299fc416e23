terraform {
  required_version = ">= 1.0, < 2.0"

  # State stays on the laptop (terraform.tfstate here, ignored by git): a kind cluster lives and
  # dies with the machine it runs on.

  required_providers {
    kind = {
      source  = "tehcyx/kind"
      version = ">= 0.4.0, < 0.8.0"
    }
    docker = {
      source  = "kreuzwerker/docker"
      version = ">= 3.0.0, < 4.0.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = ">= 2.12, < 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.25, < 3.0"
    }
    null = {
      source  = "hashicorp/null"
      version = ">= 3.2, < 4.0"
    }
  }
}
