# sts endpoint without a scheme
# summary: Invalid Endpoint URL
# at: sts = "127.0.0.1:4566"

provider "immutable" {
  endpoints {
    sts = "127.0.0.1:4566"
  }
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
