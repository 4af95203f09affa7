"""A throwaway OpenLDAP server (Debian's slapd) started by the tests: its own configuration in a temp folder,
a test CA, StartTLS on an ldap:// port and TLS on an ldaps:// port of 127.0.0.1, the memberof overlay, and a
seeded directory of people and nested groups."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import ldap3

from grantflow.tls import init_tls
from tests.processes import free_port

SLAPD = "/usr/sbin/slapd"
BASE = "dc=corp,dc=example"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "directory-root-secret"
SERVICE_DN = f"cn=grantflow,ou=services,{BASE}"
SERVICE_PASSWORD = "grantflow-service-secret"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


@dataclass
class Directory:
    """A running slapd: where it listens, its CA, and an admin connection to change its data."""

    ldap_port: int
    ldaps_port: int
    ca_file: Path
    folder: Path

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        server = ldap3.Server("127.0.0.1", port=self.ldap_port)
        connection = ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        try:
            yield connection
        finally:
            connection.unbind()

    def add_person(self, uid: str, name: str, email: str, password: str) -> None:
        with self.admin() as admin:
            attributes = {"cn": name, "sn": name.split()[-1], "mail": email, "userPassword": password}
            assert admin.add(person_dn(uid), ["inetOrgPerson"], attributes), admin.result

    def add_group(self, cn: str, *members: str) -> None:
        with self.admin() as admin:
            assert admin.add(group_dn(cn), ["groupOfNames"], {"member": list(members) or [ROOT_DN]}), admin.result

    def remove_member(self, cn: str, member: str) -> None:
        with self.admin() as admin:
            assert admin.modify(group_dn(cn), {"member": [(ldap3.MODIFY_DELETE, [member])]}), admin.result

    def delete(self, dn: str) -> None:
        with self.admin() as admin:
            assert admin.delete(dn), admin.result


TLS_CONFIG = """
TLSCACertificateFile {tls}/ca.pem
TLSCertificateFile {tls}/server.pem
TLSCertificateKeyFile {tls}/server.key
"""

CONFIG = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {folder}/slapd.pid
{tls_config}
# Active Directory answers a DN with an empty password as an anonymous success; so does this server, so that the
# tests show grantflow refusing empty passwords itself.
allow bind_anon_dn
database mdb
maxsize 104857600
suffix "{base}"
rootdn "{root}"
rootpw {root_password}
directory {folder}/db
{limits}
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
"""


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"slapd exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("slapd did not listen within 20 s")


def _seed(directory: Directory) -> None:
    with directory.admin() as admin:
        assert admin.add(BASE, ["dcObject", "organization"], {"dc": "corp", "o": "Corp"}), admin.result
        for unit in ("people", "groups", "services"):
            assert admin.add(f"ou={unit},{BASE}", ["organizationalUnit"], {"ou": unit}), admin.result
        service = {"cn": "grantflow", "sn": "service", "userPassword": SERVICE_PASSWORD}
        assert admin.add(SERVICE_DN, ["inetOrgPerson"], service), admin.result


@contextmanager
def running_directory(folder: Path, tls: bool = True, service_size_limit: int | None = None) -> Iterator[Directory]:
    """slapd in `folder` on two free ports, with the base entries and a service account; stopped at the end.

    Without `tls` the server has no certificate: StartTLS is refused, as by a server (or a man in the middle)
    that strips it, and only the ldap:// port is served. The service account may read any number of entries
    unless `service_size_limit` says otherwise (slapd's own default is 500).
    """
    if shutil.which(SLAPD) is None:
        raise AssertionError(f"{SLAPD} is missing: apt-get install -y slapd ldap-utils (.ci/run does)")
    files = init_tls(folder / "tls", ["127.0.0.1"], datetime.now(UTC))
    (folder / "db").mkdir(parents=True)
    config = folder / "slapd.conf"
    tls_config = TLS_CONFIG.format(tls=files.ca_cert.parent) if tls else ""
    size = "unlimited" if service_size_limit is None else str(service_size_limit)
    limits = f'limits dn.exact="{SERVICE_DN}" size={size}'
    config.write_text(
        CONFIG.format(
            folder=folder, tls_config=tls_config, base=BASE, root=ROOT_DN, root_password=ROOT_PASSWORD, limits=limits
        )
    )
    directory = Directory(free_port(), free_port(), files.ca_cert, folder)
    urls = f"{directory.ldap_url}/ {directory.ldaps_url}/" if tls else f"{directory.ldap_url}/"
    log = folder / "slapd.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([SLAPD, "-f", str(config), "-h", urls, "-d", "0"], stdout=sink, stderr=sink)
    try:
        _wait_for(directory.ldap_port, process, log)
        if tls:
            _wait_for(directory.ldaps_port, process, log)
        _seed(directory)
        yield directory
    finally:
        process.terminate()
        process.wait(timeout=10)
