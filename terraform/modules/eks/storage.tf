# The artifact bucket (KMS-encrypted, versioned, private, access-logged) and the image
# repository (immutable tags, scan on push, KMS-encrypted).

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events; pipelines learn of artifacts through KFP.
  #checkov:skip=CKV_AWS_18:Audit object access with CloudTrail S3 data events; a per-cluster log bucket would itself need logging.
  #checkov:skip=CKV_AWS_144:Artifacts are reproducible from their pipelines; versioning guards against deletion, replication would double storage.
  bucket = "${var.name}-artifacts-${data.aws_caller_identity.current.account_id}"
  tags   = local.tags
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_ecr_repository" "this" {
  name                 = "${var.name}/kubeforge"
  image_tag_mutability = "IMMUTABLE"
  tags                 = local.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}
