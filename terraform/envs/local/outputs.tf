output "kubeconfig" {
  description = "Path of the kind cluster's kubeconfig."
  value       = module.kind.kubeconfig_path
}

output "kfp_endpoint" {
  description = "URL of the KFP UI and API on this machine."
  value       = module.kind.kfp_endpoint
}

output "artifact_root" {
  description = "Artifact root URI for pipelines (KFP's MinIO)."
  value       = var.artifact_root
}

output "image_registry" {
  description = "Local registry: push localhost:5001/IMAGE, the cluster pulls the same name."
  value       = module.kind.image_registry
}
