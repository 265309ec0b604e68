# A CI team that rebuilds its runner image several times a day and pays
# spot prices for the build instance, capped below the on-demand price. The
# fleet may pick any of three small types, and the spot request and fleet
# are tagged for cost reports.
# Covers: spot_price with a number, spot_instance_types,
# spot_allocation_strategy, spot_tag blocks with {{ .SourceAMIName }},
# fleet_tags, run_tags, launch_block_device_mappings, a shell provisioner.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "spot_price" {
  type        = string
  description = "Highest hourly price for the build instance; \"0\" builds on demand."
  default     = "0.0300"
}

locals {
  cost_tags = {
    CostCenter = "ci-0017"
    Purpose    = "runner-image-build"
  }
}

source "amazon-ebs" "runner" {
  region                   = "us-east-1"
  spot_price               = var.spot_price
  spot_instance_types      = ["t3.medium", "t3a.medium", "m5.large"]
  spot_allocation_strategy = "price-capacity-optimized"
  ssh_username             = "ec2-user"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name        = "ci-runner-{{timestamp}}"
  ami_description = "CI runner built from {{ .SourceAMIName }}"

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 30
    volume_type           = "gp3"
    delete_on_termination = true
  }

  dynamic "spot_tag" {
    for_each = local.cost_tags
    content {
      key   = spot_tag.key
      value = spot_tag.value
    }
  }
  spot_tag {
    key   = "BaseImage"
    value = "{{ .SourceAMIName }}"
  }

  fleet_tags = local.cost_tags
  run_tags = {
    Name = "packer-ci-runner"
  }
  tags = {
    Name       = "ci-runner"
    CostCenter = "ci-0017"
  }
}

build {
  sources = ["source.amazon-ebs.runner"]

  provisioner "shell" {
    inline = [
      "echo 'Installing the CI runner'",
      "uname -a",
    ]
  }
}
