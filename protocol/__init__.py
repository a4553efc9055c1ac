"""The protocol between the exchange and provider nodes (数联网), pure: both sides import it, it imports neither.

    tickets       the exchange's signed ticket for one provider's part of a job, and the node's verifier
    grantstatus   the exchange's signed, seconds-old word that the ticket's grant is still active
    identity      a node proves it holds its provider's key by signing a nonce the exchange chose
    receipts      what a node signs about each answer, checked by the exchange and again by the auditor

Each signature has a context string of its own (``pdx-ticket/v1``, ``pdx-grant-status/v1``, ``pdx-node-identity/v1``,
``pdx-receipt/v1``), so no signed object can be taken for another.
"""
