# empty profile name
# summary: Empty Value
# at: profile = ""

provider "immutable" {
  profile = ""
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
