output "namespace" {
  description = "Namespace of the kubeforge services."
  value       = kubernetes_namespace.kubeforge.metadata[0].name
}

output "kfp_ui_service" {
  description = "Namespace/name of the Service in front of the KFP UI and API."
  value       = "kubeflow/${kubernetes_service.kfp_ui.metadata[0].name}"
}

output "kfp_in_cluster_endpoint" {
  description = "URL of the KFP API inside the cluster."
  value       = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
}

output "kfp_port_forward_command" {
  description = "Command that serves the KFP UI and API on http://127.0.0.1:8080 of your machine (https://127.0.0.1:8443 through the auth proxy when it is enabled)."
  value = (local.kfp_auth_proxy
    ? "kubectl --kubeconfig ${var.kubeconfig_path} -n kubeflow port-forward svc/kfp-auth-proxy-oauth2-proxy 8443:443"
  : "kubectl --kubeconfig ${var.kubeconfig_path} -n kubeflow port-forward svc/${kubernetes_service.kfp_ui.metadata[0].name} 8080:80")
}

output "kfp_load_balancer_endpoint" {
  description = "URL of the KFP UI and API through its internal LoadBalancer (empty unless kfp_internal_load_balancer is enabled)."
  value       = local.kfp_load_balancer ? "http://${try(coalesce(local.kfp_ingress.hostname, local.kfp_ingress.ip), "")}" : ""
}

output "scheduler_url" {
  description = "URL of the kubeforge scheduler API inside the cluster."
  value       = "http://kubeforge-scheduler.${kubernetes_namespace.kubeforge.metadata[0].name}.svc.cluster.local:8080"
}

output "releases" {
  description = "Installed Helm releases and their chart versions."
  value = {
    cert_manager = helm_release.cert_manager.version
    trainer      = helm_release.trainer.version
    kserve       = helm_release.kserve.version
    kueue        = helm_release.kueue.version
    kubeforge    = helm_release.kubeforge.version
  }
}
