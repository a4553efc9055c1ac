// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title GrantRegistry — the status of pdx's authorizations (授权状态), readable by anyone
/// @notice The exchange's operator mirrors every grant's status change here, in ledger order: each update names the
/// sequence number of the ledger entry that made the change, and sequence numbers only grow, so a retried or
/// replayed batch cannot roll a status back. Revoked, terminated and expired are final.
contract GrantRegistry is AccessControl {
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    enum Status {
        None,
        Active,
        Suspended,
        Revoked,
        Terminated,
        Expired
    }

    struct Record {
        bytes32 termsHash; // SHA-256 of the RFC 8785 canonical JSON of the grant's terms
        Status status;
        uint64 validFrom; // unix seconds
        uint64 validUntil; // unix seconds
        uint64 ledgerSeq; // the ledger entry that set this status
        uint64 updatedAt; // block timestamp
    }

    struct Update {
        string grantId;
        bytes32 termsHash;
        Status status;
        uint64 validFrom;
        uint64 validUntil;
        uint64 ledgerSeq;
    }

    /// @notice The highest ledger sequence number mirrored so far (0 before the first update).
    uint64 public highestSeq;
    /// @notice How many status updates were recorded.
    uint256 public updateCount;
    /// @notice The block this contract was deployed in: where an auditor starts reading its events.
    uint64 public immutable deployedBlock;

    mapping(bytes32 grantKey => Record) private _records;

    event GrantStatusChanged(
        bytes32 indexed grantKey,
        string grantId,
        Status status,
        bytes32 termsHash,
        uint64 validFrom,
        uint64 validUntil,
        uint64 ledgerSeq
    );

    error StaleUpdate(string grantId, uint64 highestSeq, uint64 ledgerSeq);
    error NoStatus(string grantId);
    error StatusIsFinal(string grantId, Status status);
    error EmptyWindow(string grantId, uint64 validFrom, uint64 validUntil);

    constructor(address admin, address operator) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        deployedBlock = uint64(block.number);
    }

    /// @notice Record status changes in ledger order; the whole batch reverts if any one is refused.
    function record(Update[] calldata updates) external onlyRole(OPERATOR_ROLE) {
        uint64 highest = highestSeq;
        for (uint256 i = 0; i < updates.length; ++i) {
            Update calldata u = updates[i];
            // ledger entry 0 is the log's genesis, so every grant entry's number is at least 1
            if (u.ledgerSeq <= highest) revert StaleUpdate(u.grantId, highest, u.ledgerSeq);
            if (u.status == Status.None) revert NoStatus(u.grantId);
            if (u.validUntil <= u.validFrom) revert EmptyWindow(u.grantId, u.validFrom, u.validUntil);
            bytes32 key = keccak256(bytes(u.grantId));
            Record storage current = _records[key];
            if (current.status >= Status.Revoked) revert StatusIsFinal(u.grantId, current.status);
            _records[key] = Record(u.termsHash, u.status, u.validFrom, u.validUntil, u.ledgerSeq, uint64(block.timestamp));
            highest = u.ledgerSeq;
            emit GrantStatusChanged(key, u.grantId, u.status, u.termsHash, u.validFrom, u.validUntil, u.ledgerSeq);
        }
        highestSeq = highest;
        updateCount += updates.length;
    }

    /// @notice The recorded status of `grantId` (status None if the registry never heard of it).
    function statusOf(string calldata grantId) external view returns (Record memory) {
        return _records[keccak256(bytes(grantId))];
    }

    /// @notice Whether `grantId` is active now: status Active and the block time inside its validity window.
    function isActive(string calldata grantId) external view returns (bool) {
        Record storage r = _records[keccak256(bytes(grantId))];
        return r.status == Status.Active && block.timestamp >= r.validFrom && block.timestamp < r.validUntil;
    }
}
