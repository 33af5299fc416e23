variable "name" {
  type        = string
  description = "Name of the cluster and prefix of its resources."
  default     = "kubeforge"
}

variable "region" {
  type        = string
  description = "AWS region of the cluster."
  default     = "us-east-1"
}

variable "availability_zones" {
  type        = list(string)
  description = "At least two availability zones of the region."
  default     = ["us-east-1a", "us-east-1b"]
}

variable "aws_endpoint" {
  type        = string
  description = "URL of an emulated AWS API (moto's server) for tests; empty for real AWS. `kubeforge infra --aws-endpoint` sets it."
  default     = ""
}

variable "public_access_cidrs" {
  type        = list(string)
  description = "CIDR blocks allowed to reach the Kubernetes API; empty keeps the endpoint private."
  default     = []
}

variable "model_server_enabled" {
  type        = bool
  description = "Whether the kubeforge chart runs a model server."
  default     = false
}

variable "kfp_internal_load_balancer" {
  type        = object({ enabled = bool, source_ranges = list(string) })
  description = "Opt-in: the KFP UI on an internal LoadBalancer that accepts only source_ranges; by default it is ClusterIP (see the kfp_port_forward_command output)."
  default     = { enabled = false, source_ranges = [] }
}

variable "kfp_auth_proxy" {
  type = object({
    enabled            = bool
    oidc_issuer_url    = string
    client_secret_name = string
    tls_secret_name    = string
    email_domains      = list(string)
  })
  description = "Opt-in: oauth2-proxy (OIDC, HTTPS) in front of the KFP UI; see the platform module."
  default     = { enabled = false, oidc_issuer_url = "", client_secret_name = "", tls_secret_name = "", email_domains = [] }
}
