"""The site-exit controller: pure policy (rules from model + liveness) and a thin os-ken shell."""
