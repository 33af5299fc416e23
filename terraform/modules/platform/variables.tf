variable "namespace" {
  type        = string
  description = "Namespace of the kubeforge chart (scheduler, dispatcher, model server) and its Kueue LocalQueue."
  default     = "kubeforge"
}

variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig that kubectl uses to apply the Kubeflow Pipelines kustomize manifests."
}

variable "artifact_root" {
  type        = string
  description = "Artifact root URI from the cluster module (s3://, gs:// or a MinIO s3:// path)."

  validation {
    condition     = can(regex("^(s3|gs)://[a-z0-9][a-z0-9.-]+(/.*)?$", var.artifact_root))
    error_message = "The artifact_root must be an s3://BUCKET[/PREFIX] or gs://BUCKET[/PREFIX] URI."
  }
}

variable "image_registry" {
  type        = string
  description = "Registry the cluster pulls the kubeforge image from (ECR, Artifact Registry or the kind registry)."
}

variable "image_tag" {
  type        = string
  description = "Tag of the kubeforge image; empty uses the chart's appVersion (the package version)."
  default     = ""
}

variable "service_account_annotations" {
  type        = map(map(string))
  description = "Annotations per service-account purpose (pipeline, scheduler) from the cluster module: IRSA or Workload Identity."
  default     = {}
}

variable "gpu_taint" {
  type        = object({ key = string, value = string, effect = string })
  description = "Taint on GPU nodes; GPU training jobs get the matching toleration."
  default     = { key = "nvidia.com/gpu", value = "present", effect = "NoSchedule" }

  validation {
    condition     = contains(["NoSchedule", "PreferNoSchedule", "NoExecute"], var.gpu_taint.effect)
    error_message = "The gpu_taint effect must be one of: NoSchedule, PreferNoSchedule, NoExecute."
  }
}

variable "postgres_secret_name" {
  type        = string
  description = "Existing Secret in the namespace whose key `url` holds the scheduler's PostgreSQL URL."
  default     = "kubeforge-postgres"
}

variable "model_server_enabled" {
  type        = bool
  description = "Whether the chart runs a model server Deployment."
  default     = false
}

variable "queue_quota" {
  type        = object({ cpu = string, memory = string, gpu = number })
  description = "Nominal quota of the default Kueue ClusterQueue."
  default     = { cpu = "32", memory = "128Gi", gpu = 4 }
}

variable "kfp_service_type" {
  type        = string
  description = "Service type of the KFP UI: ClusterIP (reach it with the kfp_port_forward_command output) or NodePort on kind. Standalone KFP has no authentication: never publish it; see kfp_internal_load_balancer."
  default     = "ClusterIP"

  validation {
    condition     = contains(["ClusterIP", "NodePort"], var.kfp_service_type)
    error_message = "The kfp_service_type must be one of: ClusterIP, NodePort (for a load balancer set kfp_internal_load_balancer)."
  }
}

variable "kfp_internal_load_balancer" {
  type        = object({ enabled = bool, source_ranges = list(string) })
  description = "Opt-in: publish the KFP UI on an internal (VPC-only) LoadBalancer that accepts only source_ranges (CIDRs, at least one)."
  default     = { enabled = false, source_ranges = [] }

  validation {
    condition     = !var.kfp_internal_load_balancer.enabled || length(var.kfp_internal_load_balancer.source_ranges) > 0
    error_message = "The kfp_internal_load_balancer needs at least one source_ranges CIDR when enabled, such as 10.0.0.0/8."
  }

  validation {
    condition     = alltrue([for cidr in var.kfp_internal_load_balancer.source_ranges : can(cidrnetmask(cidr))])
    error_message = "Every kfp_internal_load_balancer.source_ranges entry must be an IPv4 CIDR block such as 10.0.0.0/8."
  }
}

variable "kfp_node_port" {
  type        = number
  description = "NodePort of the KFP UI when kfp_service_type is NodePort (kind maps it to the laptop)."
  default     = 30080

  validation {
    condition     = var.kfp_node_port >= 30000 && var.kfp_node_port <= 32767
    error_message = "The kfp_node_port must be from 30000 to 32767."
  }
}

variable "versions" {
  type        = object({ cert_manager = string, kfp = string, trainer = string, kserve = string, kueue = string, oauth2_proxy = string })
  description = "Pinned versions of the platform components."
  default = {
    cert_manager = "v1.16.2"
    kfp          = "2.4.0"
    trainer      = "2.0.0"
    kserve       = "v0.14.1"
    kueue        = "0.10.1"
    oauth2_proxy = "7.12.0"
  }
}

variable "kfp_auth_proxy" {
  type = object({
    enabled            = bool
    oidc_issuer_url    = string
    client_secret_name = string
    tls_secret_name    = string
    email_domains      = list(string)
  })
  description = "Opt-in: oauth2-proxy (OIDC) in front of the KFP UI, serving HTTPS with the kubernetes.io/tls Secret tls_secret_name; client_secret_name holds client-id, client-secret and cookie-secret. With kfp_internal_load_balancer, the load balancer fronts the proxy instead of the UI."
  default     = { enabled = false, oidc_issuer_url = "", client_secret_name = "", tls_secret_name = "", email_domains = [] }

  validation {
    condition     = !var.kfp_auth_proxy.enabled || (can(regex("^https://", var.kfp_auth_proxy.oidc_issuer_url)) && var.kfp_auth_proxy.client_secret_name != "" && var.kfp_auth_proxy.tls_secret_name != "" && length(var.kfp_auth_proxy.email_domains) > 0)
    error_message = "The kfp_auth_proxy needs, when enabled, an https:// oidc_issuer_url, client_secret_name, tls_secret_name and at least one email_domains entry (such as example.com)."
  }
}
