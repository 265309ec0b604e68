# want: ec2_cert_path
# want: /nonexistent/ec2.pem
source "ami-instance" "bad" {
  region        = "us-east-1"
  instance_type = "m3.medium"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "root"
  ami_name      = "bad-input-{{timestamp}}"
  s3_bucket     = "my-bundles"
  ec2_cert_path = "/nonexistent/ec2.pem"
}

build {
  sources = ["source.ami-instance.bad"]
}
