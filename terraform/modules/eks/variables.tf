variable "name" {
  type        = string
  description = "Name of the cluster; prefixes every resource this module creates."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "The name must be 3 to 32 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the EKS control plane and node groups."
  default     = "1.31"

  validation {
    condition     = contains(["1.29", "1.30", "1.31", "1.32"], var.kubernetes_version)
    error_message = "The kubernetes_version must be one of: 1.29, 1.30, 1.31, 1.32."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the cluster VPC; split into one private subnet per availability zone."
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "The vpc_cidr must be an IPv4 CIDR block such as 10.40.0.0/16."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "Availability zones for the subnets; EKS needs at least two."

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "The availability_zones list must name at least two zones, for example [\"us-east-1a\", \"us-east-1b\"]."
  }
}

variable "endpoint_public_access" {
  type        = bool
  description = "Whether the Kubernetes API is reachable from the internet (only from public_access_cidrs)."
  default     = false
}

variable "public_access_cidrs" {
  type        = list(string)
  description = "CIDR blocks allowed to reach the public Kubernetes API when endpoint_public_access is true."
  default     = []

  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every public_access_cidrs entry must be an IPv4 CIDR block such as 203.0.113.0/24."
  }
}

variable "cpu_instance_types" {
  type        = list(string)
  description = "EC2 instance types of the general-purpose node group."
  default     = ["m6i.xlarge"]
}

variable "cpu_node_count" {
  type        = object({ min = number, desired = number, max = number })
  description = "Size of the general-purpose node group."
  default     = { min = 1, desired = 2, max = 5 }

  validation {
    condition     = var.cpu_node_count.min >= 1 && var.cpu_node_count.min <= var.cpu_node_count.desired && var.cpu_node_count.desired <= var.cpu_node_count.max
    error_message = "The cpu_node_count must satisfy 1 <= min <= desired <= max."
  }
}

variable "gpu_instance_types" {
  type        = list(string)
  description = "EC2 instance types of the GPU node group (tainted nvidia.com/gpu=present:NoSchedule)."
  default     = ["g5.xlarge"]
}

variable "gpu_node_count" {
  type        = object({ min = number, desired = number, max = number })
  description = "Size of the GPU node group; min 0 lets it scale to zero when no training job asks for a GPU."
  default     = { min = 0, desired = 0, max = 4 }

  validation {
    condition     = var.gpu_node_count.min >= 0 && var.gpu_node_count.min <= var.gpu_node_count.desired && var.gpu_node_count.desired <= var.gpu_node_count.max && var.gpu_node_count.max >= 1
    error_message = "The gpu_node_count must satisfy 0 <= min <= desired <= max and max >= 1."
  }
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the kubeforge service accounts that IRSA roles trust."
  default     = "kubeforge"
}

variable "service_accounts" {
  type        = map(string)
  description = "IRSA roles to create: role purpose (pipeline, scheduler) to the Kubernetes service account name."
  default     = { pipeline = "kubeforge-pipeline", scheduler = "kubeforge-scheduler" }
}

variable "oidc_thumbprints" {
  type        = list(string)
  description = "SHA-1 thumbprints of the EKS OIDC issuer's root CA, trusted by the IAM OIDC provider."
  default     = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the control-plane and VPC flow log groups, in days."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be one of: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
