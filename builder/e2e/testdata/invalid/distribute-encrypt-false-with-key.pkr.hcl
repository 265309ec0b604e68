# want: encrypt_boot, kms_key_id
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region       = "us-east-1"
    source_ami   = "ami-0123456789abcdef0"
    regions      = ["eu-west-1"]
    encrypt_boot = false
    kms_key_id   = "alias/team"
  }
}
