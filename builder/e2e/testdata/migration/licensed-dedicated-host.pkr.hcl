# A software vendor's build pipeline whose licence terms require dedicated
# hardware: the build instance runs with dedicated tenancy, is counted
# against a License Manager configuration, never uses a capacity
# reservation meant for production, and may burst without throttling.
# Covers: placement { tenancy }, license_specifications,
# capacity_reservation_preference, enable_unlimited_credits,
# shutdown_behavior, enable_nitro_enclave, no_ephemeral, ebs_optimized,
# communicator = "none".
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "license_configuration_arn" {
  type    = string
  default = "arn:aws:license-manager:us-east-1:111122223333:license-configuration:lic-0f0e0d0c0b0a09080706050403020100"
}

source "amazon-ebs" "licensed" {
  region        = "us-east-1"
  instance_type = "t3.large"
  communicator  = "none"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  placement {
    tenancy = "dedicated"
  }

  license_specifications {
    license_configuration_request {
      license_configuration_arn = var.license_configuration_arn
    }
  }

  capacity_reservation_preference = "none"
  enable_unlimited_credits        = true
  enable_nitro_enclave            = true
  shutdown_behavior               = "stop"
  no_ephemeral                    = true
  ebs_optimized                   = true

  ami_name = "licensed-base-{{timestamp}}"
  tags = {
    Licensing = "dedicated"
  }
}

build {
  sources = ["source.amazon-ebs.licensed"]
}
