output "kubeconfig" {
  description = "Kubeconfig of the EKS cluster (authenticates with `aws eks get-token`)."
  value       = local.kubeconfig
  sensitive   = true
}

output "kfp_endpoint" {
  description = "URL of the KFP UI and API through the LoadBalancer Service in front of it."
  value       = module.platform.kfp_load_balancer_endpoint
}

output "artifact_root" {
  description = "Artifact root URI for pipelines (S3)."
  value       = module.eks.artifact_root
}

output "image_registry" {
  description = "ECR repository URL for the kubeforge image."
  value       = module.eks.image_registry
}
