# want: metadata_options.http_put_response_hop_limit
# want: 1 to 64
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  metadata_options {
    http_put_response_hop_limit = 99
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
