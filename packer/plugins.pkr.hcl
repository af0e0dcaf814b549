# The amazon plugin, which `packer init packer/` installs (Packer 1.10 and later bundle no builder).
# Alone in this file because Debian's packer 1.6.6, which validates the other files in `make test`,
# predates `required_plugins` and rejects it. 1.3.4 has every argument the template uses
# (metadata_options, imds_support, temporary_security_group_source_public_ip).
packer {
  required_version = ">= 1.7.0" # the first with required_plugins and `packer init`
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.4, < 2.0.0"
    }
  }
}
