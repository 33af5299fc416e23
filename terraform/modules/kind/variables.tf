variable "name" {
  type        = string
  description = "Name of the kind cluster."
  default     = "kubeforge"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "The name must be 2 to 32 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of the kindest/node image."
  default     = "1.31.2"

  validation {
    condition     = contains(["1.29.10", "1.30.6", "1.31.2", "1.32.0"], var.kubernetes_version)
    error_message = "The kubernetes_version must be one of: 1.29.10, 1.30.6, 1.31.2, 1.32.0."
  }
}

variable "workers" {
  type        = number
  description = "Number of worker nodes beside the control plane."
  default     = 2

  validation {
    condition     = var.workers >= 0 && var.workers <= 8 && floor(var.workers) == var.workers
    error_message = "The workers count must be a whole number from 0 to 8."
  }
}

variable "kfp_ui_port" {
  type        = number
  description = "Host port mapped to the KFP UI NodePort (30080) on the control-plane node."
  default     = 8080

  validation {
    condition     = var.kfp_ui_port >= 1024 && var.kfp_ui_port <= 65535
    error_message = "The kfp_ui_port must be from 1024 to 65535."
  }
}

variable "model_server_port" {
  type        = number
  description = "Host port mapped to the model server NodePort (30081) on the control-plane node."
  default     = 8081

  validation {
    condition     = var.model_server_port >= 1024 && var.model_server_port <= 65535
    error_message = "The model_server_port must be from 1024 to 65535."
  }
}

variable "registry_port" {
  type        = number
  description = "Host port of the local image registry (push to localhost:PORT, the cluster pulls the same name)."
  default     = 5001

  validation {
    condition     = var.registry_port >= 1024 && var.registry_port <= 65535
    error_message = "The registry_port must be from 1024 to 65535."
  }
}

variable "registry_image" {
  type        = string
  description = "Image of the local registry, pinned by tag."
  default     = "registry:2.8.3"
}
