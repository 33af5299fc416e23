output "kubeconfig" {
  description = "Kubeconfig of the GKE cluster (authenticates with gke-gcloud-auth-plugin)."
  value       = local.kubeconfig
  sensitive   = true
}

output "kfp_endpoint" {
  description = "URL of the KFP UI and API through the LoadBalancer Service in front of it."
  value       = module.platform.kfp_load_balancer_endpoint
}

output "artifact_root" {
  description = "Artifact root URI for pipelines (GCS)."
  value       = module.gke.artifact_root
}

output "image_registry" {
  description = "Artifact Registry path for the kubeforge image."
  value       = module.gke.image_registry
}
