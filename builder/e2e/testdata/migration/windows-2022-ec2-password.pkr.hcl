# A Windows team's Server 2022 IIS image, reached over WinRM with the
# Administrator password that EC2 generates: no winrm_password, and user
# data that only turns on WinRM over HTTPS.
# Covers: communicator = "winrm" without winrm_password (the password is
# read with GetPasswordData and decrypted with the temporary RSA key pair),
# windows_password_timeout, winrm_use_ssl, a user_data heredoc,
# run_tags, powershell and windows-restart provisioners.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

source "amazon-ebs" "iis" {
  region        = var.region
  instance_type = "t3.large"

  source_ami_filter {
    filters = {
      name                = "Windows_Server-2022-English-Full-Base-*"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  communicator             = "winrm"
  winrm_username           = "Administrator"
  winrm_use_ssl            = true
  winrm_insecure           = true
  winrm_timeout            = "30m"
  windows_password_timeout = "25m"

  user_data = <<-EOT
    <powershell>
    $cert = New-SelfSignedCertificate -DnsName "packer" -CertStoreLocation Cert:\LocalMachine\My
    winrm create "winrm/config/Listener?Address=*+Transport=HTTPS" "@{Hostname=`"packer`"; CertificateThumbprint=`"$($cert.Thumbprint)`"}"
    netsh advfirewall firewall add rule name="WinRM HTTPS" dir=in action=allow protocol=TCP localport=5986
    </powershell>
  EOT

  ami_name        = "iis-2022-{{timestamp}}"
  ami_description = "IIS on Windows Server 2022"

  run_tags = {
    Name    = "packer-iis-build"
    Project = "web-platform"
  }

  tags = {
    Name = "iis-2022"
    OS   = "Windows"
  }
}

build {
  sources = ["source.amazon-ebs.iis"]

  provisioner "powershell" {
    inline = [
      "Install-WindowsFeature -Name Web-Server -IncludeManagementTools",
    ]
  }

  provisioner "windows-restart" {
    restart_timeout = "15m"
  }

  # Instances launched from the image generate their own password again.
  provisioner "powershell" {
    inline = [
      "& $env:ProgramFiles\\Amazon\\EC2Launch\\ec2launch.exe reset --block",
    ]
  }
}
