#!/usr/bin/env bash
# Debian packages the tests use as real parts: PostgreSQL (catalog), Chromium (web UI), slapd (LDAP sign-in),
# par2 (removable disks' recovery data), zstd (the by-hand restore recipe), systemd (systemd-analyze verify of the
# units in deploy/), python3-venv, pango and the DejaVu fonts (WeasyPrint: `rtvault procedure`'s PDF), dicom3tools
# (dciodvfy: every exported DICOM object validated), orthanc (a real PACS that must accept them; the tests start
# their own on free loopback ports), dcmtk (dcmdump, storescu, findscu, movescu, getscu, storescp: DICOM peers)
# and openssl (the DICOM node's TLS test makes its certificate). Installed with
# apt-get when running as root and missing; otherwise the missing ones are named (the tests that need them say
# they are skipped or fail).
set -euo pipefail
packages=(python3-venv postgresql chromium slapd ldap-utils par2 zstd systemd libpango-1.0-0 libpangoft2-1.0-0
          fonts-dejavu-core dicom3tools orthanc dcmtk openssl)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "rtvault tests: missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
fi
