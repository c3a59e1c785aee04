"""The test kit: what the tests share, imported as `kit` (tests/ is on sys.path: `pythonpath` in pyproject.toml).

    kit.cli       run_cli (the `rtvault` command in a subprocess, checked), rtvault(config, ...), Operator
    kit.config    write_config: every test's rtvault.toml, its tables given as dictionaries; write (a text as it is)
    kit.files     a Pinnacle database on disk: the files a backup keeps, their bytes, times and modes
    kit.vault     Vault: a database, a configuration and a store (and an archive inbox); History
    kit.store     where a store key's bytes lie, in either store format, and how to damage or lose them
    kit.postgres, kit.seaweed, kit.ldap       real PostgreSQL, SeaweedFS (S3) and OpenLDAP servers
    kit.dicom     DICOM validation: dciodvfy_errors (dicom3tools), a real Orthanc (upload, list)
    kit.archive, kit.catalog, kit.copies, kit.demo, kit.jobs, kit.pinnacle, kit.web   what the tests of one folder share
    kit.tarscan   tar archives and their members as Python's tarfile reads them (the tar scanner's tests)
    kit.crypto    the passphrase of the encryption tests' stores
    kit.browser   a served deployment for the Chromium tests; kit.faults: small disks, unprivileged runs

The conftest.py files hold the fixtures only.
"""
