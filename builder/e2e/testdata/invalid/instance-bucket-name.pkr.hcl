# want: s3_bucket
# want: My_Bucket
# want: 3 to 63
source "ami-instance" "bad" {
  region         = "us-east-1"
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami     = "ami-0123456789abcdef0"
  ssh_username   = "root"
  ami_name       = "bad-input-{{timestamp}}"
  s3_bucket      = "My_Bucket"

}

build {
  sources = ["source.ami-instance.bad"]
}
