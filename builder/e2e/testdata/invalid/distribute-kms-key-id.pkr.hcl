# want: kms_key_id
# want: not a key
# want: alias/<name>
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region     = "us-east-1"
    source_ami = "ami-0123456789abcdef0"
    regions    = ["eu-west-1"]
    kms_key_id = "not a key"
  }
}
