provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

module "gke" {
  source                  = "../../modules/gke"
  name                    = var.name
  project_id              = var.project_id
  region                  = var.region
  kms_key_name            = var.kms_key_name
  master_authorized_cidrs = var.master_authorized_cidrs
}

locals {
  kubeconfig = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = var.name
    clusters        = [{ name = var.name, cluster = { server = module.gke.cluster_endpoint, certificate-authority-data = module.gke.cluster_ca_certificate } }]
    contexts        = [{ name = var.name, context = { cluster = var.name, user = var.name } }]
    users = [{
      name = var.name
      user = { exec = { apiVersion = "client.authentication.k8s.io/v1beta1", command = "gke-gcloud-auth-plugin", provideClusterInfo = true } }
    }]
  })
}

resource "local_sensitive_file" "kubeconfig" {
  content         = local.kubeconfig
  filename        = "${path.root}/.terraform/kubeconfig"
  file_permission = "0600"
}

provider "kubernetes" {
  host                   = module.gke.cluster_endpoint
  cluster_ca_certificate = base64decode(module.gke.cluster_ca_certificate)
  token                  = data.google_client_config.current.access_token
}

provider "helm" {
  kubernetes {
    host                   = module.gke.cluster_endpoint
    cluster_ca_certificate = base64decode(module.gke.cluster_ca_certificate)
    token                  = data.google_client_config.current.access_token
  }
}

module "platform" {
  source                      = "../../modules/platform"
  kubeconfig_path             = local_sensitive_file.kubeconfig.filename
  artifact_root               = module.gke.artifact_root
  image_registry              = module.gke.image_registry
  service_account_annotations = module.gke.service_account_annotations
  gpu_taint                   = module.gke.gpu_taint
  model_server_enabled        = var.model_server_enabled
  kfp_internal_load_balancer  = var.kfp_internal_load_balancer
  kfp_auth_proxy              = var.kfp_auth_proxy
}
