"""kpasswd (RFC 3244) against the real Samba AD DC of the lab, both ways round.

portcall's client, from the client namespace, sends the DC's kpasswd service a change request
that no key opens, over UDP and TCP 464. What Samba 4.17 answers, as read here: a kpasswd reply
of version 1 with no AP-REP and a KRB-ERROR from kadmin/changepw of PORTCALL.TEST (name type 1)
whose error code is 2, the kpasswd result code again rather than a Kerberos error, and whose
e-data holds result 2 (KRB5_KPASSWD_HARDERROR) with the string "gensec_update failed -
NT_STATUS_LOGON_FAILURE".

portcall's server role is checked by MIT's kpasswd, which cannot send a change without a
ticket for kadmin/changepw: the real DC's KDC issues that ticket for the lab's administrator,
and the change itself goes to portcall's server on loopback in the client namespace, which
refuses it; the password never changes. MIT kpasswd 1.20 sends version 1 (the change-only
protocol) and reports the refusal as "Authentication error: " and the server's result string.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from portcall.protocols.kpasswd import AUTH_NOTE, CODE_IS_RESULT_NOTE
from tests.interop.lab.daemons.samba import ADMIN_PASSWORD, DC_ADDRESS, DNS_DOMAIN, REALM
from tests.interop.samba_domain import Domain

pytestmark = pytest.mark.interop

#: The directory above `tests`, so that subprocesses find the `tests` package.
ROOT = Path(__file__).resolve().parents[2]
KPASSWD_PORT = 464


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def drive(domain: Domain, transport: str) -> dict[str, Any]:
    """What portcall's kpasswd client learnt from the DC over `transport` (ServiceInfo)."""
    argv = [sys.executable, "-m", "tests.interop.dc_drive", "kpasswd", transport, DC_ADDRESS]
    result = domain.run([*argv, str(KPASSWD_PORT), DNS_DOMAIN], env=_env())
    assert result.stdout, f"the driver printed nothing: {result.stderr[-2000:]}"
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert "info" in outcome, f"kpasswd over {transport}: {outcome}"
    print(f"kpasswd/{transport}: {json.dumps(outcome['info'], sort_keys=True)}")
    assert result.returncode == 0
    info: dict[str, Any] = outcome["info"]
    return info


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kpasswd_client_reads_samba_s_refusal(domain: Domain, transport: str) -> None:
    info = drive(domain, transport)
    details = info["details"]
    assert details["transport"] == transport
    assert details["realm_asked"] == REALM
    assert details["version"] == 1
    assert details["realm"] == REALM
    assert details["server"] == "kadmin/changepw"
    # Samba's error code is the result code again (2), not a Kerberos error of RFC 4120.
    assert details["error_code"] == 2
    assert details["result_code"] == 2
    assert details["result_name"] == "KRB5_KPASSWD_HARDERROR"
    assert details["result_string"] == "gensec_update failed - NT_STATUS_LOGON_FAILURE"
    assert "e_text" not in details
    assert info["banner"] == f"kpasswd realm {REALM} (KRB-ERROR 2; result 2 KRB5_KPASSWD_HARDERROR)"
    assert info["notes"] == [CODE_IS_RESULT_NOTE]


# -- MIT kpasswd against portcall's server role -----------------------------------------------

#: Run in the client namespace: serves portcall's kpasswd role on loopback, points MIT kpasswd
#: at it (the DC stays the KDC), feeds it the old password and a new one, prints what happened.
_TOOL_RUN = """
import asyncio, json, os, sys
from portcall.protocols.kpasswd import KpasswdServer
from tests.protocols.dc_serving import TOOL_TIMEOUT, serving

realm, kdc, password, workdir, transport = sys.argv[1:6]

async def main():
    async with serving(lambda t: KpasswdServer(realm=realm, transport=t)) as ports:
        port = ports.udp if transport == "udp" else ports.tcp
        conf = os.path.join(workdir, f"krb5-kpasswd-{transport}.conf")
        limit = " udp_preference_limit = 1\\n" if transport == "tcp" else ""
        with open(conf, "w") as out:
            out.write(
                f"[libdefaults]\\n default_realm = {realm}\\n dns_lookup_kdc = false\\n"
                f" dns_lookup_realm = false\\n rdns = false\\n{limit}"
                f"[realms]\\n {realm} = {{\\n  kdc = {kdc}\\n"
                f"  kpasswd_server = 127.0.0.1:{port}\\n }}\\n"
            )
        env = {**os.environ, "KRB5_CONFIG": conf, "KRB5_TRACE": "/dev/stdout",
               "KRB5CCNAME": f"FILE:{workdir}/ccache-{transport}"}
        process = await asyncio.create_subprocess_exec(
            "kpasswd", f"Administrator@{realm}", env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        typed = f"{password}\\nNever-Set-1234!\\nNever-Set-1234!\\n".encode()
        output, _ = await asyncio.wait_for(process.communicate(typed), TOOL_TIMEOUT)
        served = [[s.transport, s.heard] for s in ports.served]
        print(json.dumps({"status": process.returncode, "output": output.decode(errors="replace"),
                          "served": served}))

asyncio.run(main())
"""


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_mit_kpasswd_is_refused_by_portcall_s_server(domain: Domain, transport: str) -> None:
    script = domain.client.workdir / "kpasswd_tool_run.py"
    script.write_text(_TOOL_RUN)
    workdir = domain.client.workdir
    argv = [sys.executable, str(script), REALM, DC_ADDRESS, ADMIN_PASSWORD, str(workdir)]
    result = domain.run([*argv, transport], env=_env())
    assert result.stdout, result.stderr[-2000:]
    outcome = json.loads(result.stdout.splitlines()[-1])
    output = outcome["output"]
    print(output)
    assert outcome["status"] != 0, output
    # MIT kpasswd names the result code (AUTHERROR) and shows the string the server sent.
    assert f"Authentication error: {AUTH_NOTE}" in output, output
    # It speaks the older change-only version of the protocol, 1.
    assert [served for served in outcome["served"] if served[1]] == [
        [transport, [f"kpasswd v0x0001 for kadmin/changepw@{REALM}: refused"]]
    ], outcome
