"""Prints an e-mail (read from stdin) as text: its headers, then each part, decoded, after a
`--- part <content type> <file name>` line. For the delivery tests to search what was sent."""
import email
import email.policy
import sys

m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
for k, v in m.items():
    print(f"{k}: {v}")
for part in m.walk():
    if part.is_multipart():
        continue
    print("--- part", part.get_content_type(), part.get_filename())
    print(part.get_content())
