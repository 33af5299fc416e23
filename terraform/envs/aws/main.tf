locals {
  emulated = var.aws_endpoint != ""
}

provider "aws" {
  region = var.region

  # Against an emulated AWS API (moto's server) use test credentials and skip the checks that
  # need the real AWS; against real AWS all of these are unset and the usual credential chain applies.
  access_key                  = local.emulated ? "test" : null
  secret_key                  = local.emulated ? "test" : null
  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  s3_use_path_style           = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint] : []
    content {
      ec2  = endpoints.value
      ecr  = endpoints.value
      eks  = endpoints.value
      iam  = endpoints.value
      kms  = endpoints.value
      logs = endpoints.value
      s3   = endpoints.value
      sts  = endpoints.value
    }
  }
}

module "eks" {
  source                 = "../../modules/eks"
  name                   = var.name
  availability_zones     = var.availability_zones
  endpoint_public_access = length(var.public_access_cidrs) > 0
  public_access_cidrs    = var.public_access_cidrs
}

locals {
  kubeconfig = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = var.name
    clusters        = [{ name = var.name, cluster = { server = module.eks.cluster_endpoint, certificate-authority-data = module.eks.cluster_ca_certificate } }]
    contexts        = [{ name = var.name, context = { cluster = var.name, user = var.name } }]
    users = [{
      name = var.name
      user = { exec = { apiVersion = "client.authentication.k8s.io/v1beta1", command = "aws", args = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region] } }
    }]
  })
}

resource "local_sensitive_file" "kubeconfig" {
  content         = local.kubeconfig
  filename        = "${path.root}/.terraform/kubeconfig"
  file_permission = "0600"
}

provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_ca_certificate)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_ca_certificate)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}

module "platform" {
  source                      = "../../modules/platform"
  kubeconfig_path             = local_sensitive_file.kubeconfig.filename
  artifact_root               = module.eks.artifact_root
  image_registry              = dirname(module.eks.image_registry)
  service_account_annotations = module.eks.service_account_annotations
  gpu_taint                   = module.eks.gpu_taint
  model_server_enabled        = var.model_server_enabled
  kfp_internal_load_balancer  = var.kfp_internal_load_balancer
  kfp_auth_proxy              = var.kfp_auth_proxy
}
