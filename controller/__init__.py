"""The site-exit controller: pure decisions (policy, liveness, locator pairs) and a thin os-ken shell."""
