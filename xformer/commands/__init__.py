"""One module per `xformer` subcommand; each defines ``add_parser(subparsers)``.

The CLI discovers them here, so adding a command touches no shared file.
"""
