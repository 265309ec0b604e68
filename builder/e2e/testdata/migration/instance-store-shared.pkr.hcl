# A research group publishing an instance-store image to partner accounts
# in two regions, with SR-IOV and ENA networking flagged on the AMI. Dev
# builds share with nobody (empty defaults).
# Covers: amazon-instance with account_id, s3_bucket, x509 paths,
# ami_users and ami_regions from variables with empty defaults,
# ami_product_codes, sriov_support, ena_support, ami_description with
# {{ .SourceAMIName }}.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "partners" {
  type    = list(string)
  default = []
}

variable "regions" {
  type    = list(string)
  default = []
}

source "amazon-instance" "research" {
  region        = "us-east-1"
  instance_type = "c3.large"
  ssh_username  = "ec2-user"
  source_ami    = "ami-0b4ae7e3f0e9a1c21"

  account_id     = "111122223333"
  s3_bucket      = "research-bundles"
  x509_cert_path = "${path.root}/certs/x509-cert.pem"
  x509_key_path  = "${path.root}/certs/x509-key.pem"

  ami_name                = "research-node-{{timestamp}}"
  ami_description         = "Research node built from {{ .SourceAMIName }}"
  ami_virtualization_type = "hvm"
  ami_users               = var.partners
  ami_regions             = var.regions
  ami_product_codes       = ["8fz3dsr9vdchxk2lb57fxmhlh"]
  sriov_support           = true
  ena_support             = true
}

build {
  sources = ["source.amazon-instance.research"]

  provisioner "shell" {
    inline = ["echo research stack"]
  }
}
