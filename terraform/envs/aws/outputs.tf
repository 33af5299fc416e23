output "kubeconfig" {
  description = "Kubeconfig of the EKS cluster (authenticates with `aws eks get-token`)."
  value       = local.kubeconfig
  sensitive   = true
}

output "kfp_endpoint" {
  description = "URL of the KFP UI and API: the internal LoadBalancer when enabled, else the local end of kfp_port_forward_command."
  value       = coalesce(module.platform.kfp_load_balancer_endpoint, "http://127.0.0.1:8080")
}

output "kfp_port_forward_command" {
  description = "Command that serves the KFP UI and API on http://127.0.0.1:8080 (run it before using kfp_endpoint)."
  value       = module.platform.kfp_port_forward_command
}

output "artifact_root" {
  description = "Artifact root URI for pipelines (S3)."
  value       = module.eks.artifact_root
}

output "image_registry" {
  description = "ECR repository URL for the kubeforge image."
  value       = module.eks.image_registry
}
