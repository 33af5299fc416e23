output "cluster_name" {
  description = "Name of the kind cluster."
  value       = kind_cluster.this.name
}

output "kubeconfig" {
  description = "Kubeconfig of the cluster (YAML)."
  value       = kind_cluster.this.kubeconfig
  sensitive   = true
}

output "kubeconfig_path" {
  description = "Path of the kubeconfig file kind wrote."
  value       = kind_cluster.this.kubeconfig_path
}

output "endpoint" {
  description = "URL of the Kubernetes API server."
  value       = kind_cluster.this.endpoint
}

output "client_certificate" {
  description = "Client certificate (PEM) for the API server."
  value       = kind_cluster.this.client_certificate
  sensitive   = true
}

output "client_key" {
  description = "Client key (PEM) for the API server."
  value       = kind_cluster.this.client_key
  sensitive   = true
}

output "cluster_ca_certificate" {
  description = "CA certificate (PEM) of the API server."
  value       = kind_cluster.this.cluster_ca_certificate
}

output "image_registry" {
  description = "Registry host that both the laptop (push) and the nodes (pull) use."
  value       = local.registry_host
}

output "kfp_node_port" {
  description = "NodePort the KFP UI service must use to be reachable on kfp_ui_port."
  value       = local.kfp_node_port
}

output "model_server_node_port" {
  description = "NodePort the model server service must use to be reachable on model_server_port."
  value       = local.model_port
}

output "kfp_endpoint" {
  description = "URL of the KFP UI and API on the laptop."
  value       = "http://localhost:${var.kfp_ui_port}"
}
