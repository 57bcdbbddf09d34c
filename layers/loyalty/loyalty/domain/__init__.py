"""Pure program rules: earning, expiry policies, lot allocation. No I/O, no clock reads."""
