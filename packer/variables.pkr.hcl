# Every input of the AMI build, with the guide's settings as defaults. Two have none on purpose:
# the worker image and the git revision are what the AMI is, so a build must name them.

variable "worker_image" {
  type        = string
  description = "The worker image to bake in: the image ID of the `docker save` archive in packer/worker-image/ (sha256:..., from `docker image inspect --format '{{.Id}}'`), or an ECR reference pinned by digest (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:...), which is pulled instead."
  validation {
    # regex_replace, not regex: packer 1.6.6, which runs the checks, has no regex(). A full match
    # leaves nothing behind.
    condition     = var.worker_image != "" && regex_replace(var.worker_image, "^(sha256:[0-9a-f]{64}|[0-9]{12}[.]dkr[.]ecr[.][a-z0-9-]+[.]amazonaws[.]com/[a-z0-9._/-]+@sha256:[0-9a-f]{64})$", "") == ""
    error_message = "The worker_image must be an image ID (sha256:<64 hex>) or an ECR reference pinned by digest (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:<64 hex>)."
  }
}

variable "git_revision" {
  type        = string
  description = "The commit the worker image and this template come from (`git rev-parse HEAD`), tagged on the AMI."
  validation {
    condition     = var.git_revision != "" && regex_replace(var.git_revision, "^[0-9a-f]{7,40}(-dirty)?$", "") == ""
    error_message = "The git_revision must be a commit hash (7 to 40 hex digits), optionally ending in -dirty."
  }
}

variable "region" {
  type        = string
  default     = "ap-northeast-1"
  description = "Where the AMI is built and registered (the guide's region)."
}

variable "arch" {
  type        = string
  default     = "x86_64"
  description = "x86_64 for the guide's t3/t3a/t2 fleet; arm64 for Graviton (t4g), with a worker image built for linux/arm64."
  validation {
    condition     = contains(["x86_64", "arm64"], var.arch)
    error_message = "The arch must be x86_64 or arm64."
  }
}

variable "al2023_release" {
  type        = string
  default     = "2023.*"
  description = "AL2023 release in the source AMI's name: the newest by default; a full one (e.g. 2023.9.20251117.1) rebuilds an older AMI exactly. AL2023 repositories are locked to the AMI's release, so this also fixes every package version."
}

variable "al2023_kernel" {
  type        = string
  default     = "6.1"
  description = "Kernel line of the source AMI: 6.1 is AL2023's default (its SSM alias al2023-ami-kernel-default)."
}

variable "docker_version" {
  type        = string
  default     = "25.0"
  description = "Major.minor of the docker package from the AL2023 repositories; a newer major fails the build instead of sneaking in."
}

variable "build_instance_type" {
  type        = map(string)
  default     = { x86_64 = "t3.medium", arm64 = "t4g.medium" }
  description = "Instance that builds the AMI, per arch (the guide's worker type)."
}

variable "root_volume" {
  type = object({
    size_gb         = number
    iops            = number
    throughput_mbps = number
  })
  default     = { size_gb = 20, iops = 3000, throughput_mbps = 125 }
  description = "The guide's root volume: 20 GB gp3, 3000 IOPS, 125 MB/s, always encrypted."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the root volume and the AMI's snapshot; empty means the account's aws/ebs key (needs a customer key to share the AMI with other accounts)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the build instance; empty means the default VPC. Packer reaches it over SSH from this machine."
}

variable "build_iam_instance_profile" {
  type        = string
  default     = ""
  description = "Instance profile of the build instance: only an ECR worker_image needs one (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer)."
}

variable "environment" {
  type        = string
  default     = "dev"
  description = "The fleet stack's Environment: the agent ships to /aws/cis-file-processor/<environment>/workers."

  validation {
    condition     = regex_replace(var.environment, "^[A-Za-z0-9-]{1,32}$", "") == ""
    error_message = "The environment is 1 to 32 letters, digits or hyphens, as the stack's Environment."
  }
}

variable "ami_name_prefix" {
  type    = string
  default = "filefleet-worker"
}

variable "tags" {
  type        = map(string)
  default     = { Project = "CISFileSearch", Environment = "Development", Component = "Worker" }
  description = "The guide's tags, on the AMI, its snapshot and the build instance."
}
