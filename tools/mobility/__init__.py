"""Mobile IPv6 (RFC 6275) as RFC 4177 section 5.2 proposes it for multihoming: a host keeps a home address
while its care-of address moves between the site's exits. Pure logic (messages, bindings, the three roles'
decisions) beside the thin agent that runs in an emulated node."""
