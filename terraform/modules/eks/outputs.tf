output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64-encoded CA certificate of the Kubernetes API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider that IRSA roles trust."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "vpc_id" {
  description = "ID of the cluster VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets the nodes run in."
  value       = aws_subnet.private[*].id
}

output "node_groups" {
  description = "Node group names by pool (cpu, gpu)."
  value       = { cpu = aws_eks_node_group.cpu.node_group_name, gpu = aws_eks_node_group.gpu.node_group_name }
}

output "gpu_taint" {
  description = "Taint on the GPU nodes, in Kubernetes form, for tolerations of GPU jobs."
  value       = { key = local.gpu_taint.key, value = local.gpu_taint.value, effect = "NoSchedule" }
}

output "artifact_bucket" {
  description = "Name of the S3 artifact bucket."
  value       = aws_s3_bucket.artifacts.bucket
}

output "artifact_root" {
  description = "Artifact root URI for kubeforge pipelines (s3://BUCKET/pipelines)."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}/pipelines"
}

output "image_registry" {
  description = "URL of the ECR repository for the kubeforge image."
  value       = aws_ecr_repository.this.repository_url
}

output "service_account_annotations" {
  description = "Annotations per service-account purpose (pipeline, scheduler) binding it to its IRSA role."
  value       = { for purpose, role in aws_iam_role.irsa : purpose => { "eks.amazonaws.com/role-arn" = role.arn } }
}
