# The filefleet worker AMI: Amazon Linux 2023, Docker, the CloudWatch agent and the worker image preloaded,
# so a new instance only has to start a container (see README.md for the boot budget). One template, one
# variant; the arch is a variable. Inputs and defaults: variables.pkr.hcl. Build: README.md.

locals {
  # UTC, sortable, and unique per build: AMI names must be unique in a region.
  build_time = formatdate("YYYYMMDD-hhmmss", timestamp())

  # The AMI, its snapshot and the build instance carry the same tags. SourceAMI is filled in by the
  # builder at run time (a Go template the amazon plugin interpolates in tags).
  ami_tags = merge(var.tags, {
    Name        = "${var.ami_name_prefix}-${var.arch}"
    WorkerImage = var.worker_image
    GitRevision = var.git_revision
    SourceAMI   = "{{ .SourceAMI }}"
    BuiltBy     = "packer/filefleet-worker.pkr.hcl"
  })

  # Where the file provisioners put things on the build instance; the scripts read them from the env.
  upload_dir           = "/var/tmp"
  worker_image_archive = "/var/tmp/worker-image/filefleet-worker.tar.gz"
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.build_instance_type[var.arch]
  subnet_id     = var.subnet_id

  source_ami_filter {
    filters = {
      name                = "al2023-ami-${var.al2023_release}-kernel-${var.al2023_kernel}-${var.arch}"
      architecture        = var.arch
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # IMDSv2 only, from the first boot of the build instance. Hop limit 1 is enough: everything that asks
  # the metadata service here (the AWS CLI for an ECR pull, the CloudWatch agent's config check) runs on
  # the host, and the worker container uses the host's network.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  # ...and the AMI itself says so: instances launched from it default to IMDSv2 even if a launch
  # template forgets to.
  imds_support = "v2.0"

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_type           = "gp3"
    volume_size           = var.root_volume.size_gb
    iops                  = var.root_volume.iops
    throughput            = var.root_volume.throughput_mbps
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }

  iam_instance_profile = var.build_iam_instance_profile
  ssh_username         = "ec2-user"
  # The temporary security group opens SSH to this machine's public address only, not to 0.0.0.0/0.
  temporary_security_group_source_public_ip = true

  ami_name        = "${var.ami_name_prefix}-al2023-${var.arch}-${local.build_time}"
  ami_description = "filefleet worker on AL2023 ${var.arch}: Docker, CloudWatch agent, worker image ${var.worker_image}"
  tags            = local.ami_tags
  snapshot_tags   = local.ami_tags
  run_tags        = local.ami_tags
}

build {
  sources = ["source.amazon-ebs.worker"]

  # The unit, the agent and scrape configs, the logrotate rule (user-data.yaml rides along, unused).
  provisioner "file" {
    source      = "${path.root}/files"
    destination = "${local.upload_dir}/"
  }

  # The `docker save` archive of the worker image; with an ECR worker_image the folder holds no archive.
  provisioner "file" {
    source      = "${path.root}/worker-image"
    destination = "${local.upload_dir}/"
  }

  # One script per step, in order, as root. Each is shellcheck-clean and runs with `set -euo pipefail`.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = [
      "DOCKER_VERSION=${var.docker_version}",
      "WORKER_IMAGE=${var.worker_image}",
      "WORKER_IMAGE_ARCHIVE=${local.worker_image_archive}",
      "GIT_REVISION=${var.git_revision}",
      "ENVIRONMENT=${var.environment}",
      "FILES_DIR=${local.upload_dir}/files",
      "UPLOAD_DIRS=${local.upload_dir}/files ${local.upload_dir}/worker-image",
    ]
    scripts = [
      "${path.root}/scripts/install-docker.sh",
      "${path.root}/scripts/install-cloudwatch-agent.sh",
      "${path.root}/scripts/load-worker-image.sh",
      "${path.root}/scripts/install-worker-runtime.sh",
      "${path.root}/scripts/trim-boot.sh",
      "${path.root}/scripts/cleanup.sh",
    ]
  }

  # packer/manifest.json: the AMI id per region, and what went into it (git-ignored).
  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      worker_image = var.worker_image
      git_revision = var.git_revision
      arch         = var.arch
    }
  }
}
