provider "docker" {}

module "kind" {
  source      = "../../modules/kind"
  name        = var.name
  workers     = var.workers
  kfp_ui_port = var.kfp_ui_port
}

provider "kubernetes" {
  host                   = module.kind.endpoint
  client_certificate     = module.kind.client_certificate
  client_key             = module.kind.client_key
  cluster_ca_certificate = module.kind.cluster_ca_certificate
}

provider "helm" {
  kubernetes {
    host                   = module.kind.endpoint
    client_certificate     = module.kind.client_certificate
    client_key             = module.kind.client_key
    cluster_ca_certificate = module.kind.cluster_ca_certificate
  }
}

module "platform" {
  source               = "../../modules/platform"
  kubeconfig_path      = module.kind.kubeconfig_path
  artifact_root        = var.artifact_root
  image_registry       = module.kind.image_registry
  model_server_enabled = var.model_server_enabled
  kfp_service_type     = "NodePort"
  kfp_node_port        = module.kind.kfp_node_port
  queue_quota          = { cpu = "4", memory = "8Gi", gpu = 0 }
}
