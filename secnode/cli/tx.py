"""`sec tx VERB`: the ledger's own transactions (accounts, credits, parameters, validators).

Each verb builds a body and hands it to `secnode.cli.submit.submit`. The order, referral and
attestation verbs live with their contracts' commands (`secnode.cli.orders`, `secnode.cli.trust`).
"""

from __future__ import annotations

import argparse

from ledger.transactions import (
    AccountRegister,
    AccountRoles,
    Burn,
    Mint,
    ParameterSet,
    Transfer,
    ValidatorUpdate,
)
from secnode.cli.common import (
    ADDRESS_HELP,
    CommandError,
    Handler,
    amount,
    count,
    parse_roles,
    resolve_address,
    resolve_public_key,
)
from secnode.cli.submit import submit


def _tx_account_register(args: argparse.Namespace) -> int:
    body = AccountRegister(
        resolve_public_key(args.public_key, "--public-key"),
        parse_roles(args.roles, "--roles"),
        args.name,
    )
    return submit(args, body)


def _tx_roles(args: argparse.Namespace) -> int:
    body = AccountRoles(
        resolve_address(args.address, "--address"),
        parse_roles(args.grant, "--grant"),
        parse_roles(args.revoke, "--revoke"),
    )
    return submit(args, body)


def _tx_mint(args: argparse.Namespace) -> int:
    return submit(args, Mint(resolve_address(args.to, "--to"), args.amount))


def _tx_burn(args: argparse.Namespace) -> int:
    return submit(args, Burn(args.amount))


def _tx_transfer(args: argparse.Namespace) -> int:
    body = Transfer(resolve_address(args.to, "--to"), args.amount, args.memo)
    return submit(args, body)


def _tx_param_set(args: argparse.Namespace) -> int:
    return submit(args, ParameterSet(args.name, args.value))


def _tx_validator_update(args: argparse.Namespace) -> int:
    add = tuple(resolve_public_key(k, "--add", validator=True) for k in args.add)
    remove = tuple(resolve_address(a, "--remove", validator=True) for a in args.remove)
    if not add and not remove:
        raise CommandError("validator-update needs --add and/or --remove")
    return submit(args, ValidatorUpdate(add, remove))


def add_commands(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ledger's own verbs to `sec tx`."""

    def verb(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_text, parents=parents)
        parser.set_defaults(handler=handler)
        return parser

    register = verb("account-register", "admin: register an account", _tx_account_register)
    register.add_argument("--public-key", required=True, metavar="HEX|dev:NAME")
    register.add_argument("--roles", default="member", metavar="ROLE,...", help="default member")
    register.add_argument("--name", help="optional label")
    roles = verb("roles", "admin: grant or revoke roles", _tx_roles)
    roles.add_argument("--address", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    roles.add_argument("--grant", default="", metavar="ROLE,...")
    roles.add_argument("--revoke", default="", metavar="ROLE,...")
    mint = verb("mint", "issuer: create credits", _tx_mint)
    mint.add_argument("--to", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    mint.add_argument("--amount", required=True, type=amount, metavar="FEN")
    burn = verb("burn", "issuer: destroy own credits", _tx_burn)
    burn.add_argument("--amount", required=True, type=amount, metavar="FEN")
    transfer = verb("transfer", "move credits to another account", _tx_transfer)
    transfer.add_argument("--to", required=True, metavar="ADDRESS", help=ADDRESS_HELP)
    transfer.add_argument("--amount", required=True, type=amount, metavar="FEN")
    transfer.add_argument("--memo", help="free text, at most 140 characters")
    param = verb("param-set", "admin: change a chain parameter", _tx_param_set)
    param.add_argument("--name", required=True)
    param.add_argument("--value", required=True, type=count)
    validators = verb("validator-update", "admin: add/remove validators", _tx_validator_update)
    validators.add_argument("--add", nargs="+", default=[], metavar="HEX|dev:nodeN")
    validators.add_argument("--remove", nargs="+", default=[], metavar="ADDRESS|dev:nodeN")
