# want: x509_cert_path
# want: /nonexistent/cert.pem
source "ami-instance" "bad" {
  region         = "us-east-1"
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami     = "ami-0123456789abcdef0"
  ssh_username   = "root"
  ami_name       = "bad-input-{{timestamp}}"
  s3_bucket      = "my-bundles"
  x509_cert_path = "/nonexistent/cert.pem"
  x509_key_path  = "/nonexistent/key.pem"
}

build {
  sources = ["source.ami-instance.bad"]
}
