# want: s3_upload_concurrency
# want: -1
# want: 1 to 32
source "ami-instance" "bad" {
  region                = "us-east-1"
  instance_type         = "m3.medium"
  local_emulator        = true
  source_ami            = "ami-0123456789abcdef0"
  ssh_username          = "root"
  ami_name              = "bad-input-{{timestamp}}"
  s3_bucket             = "my-bundles"
  s3_upload_concurrency = -1
}

build {
  sources = ["source.ami-instance.bad"]
}
