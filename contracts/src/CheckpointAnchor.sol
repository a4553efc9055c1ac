// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title CheckpointAnchor — pdx's ledger checkpoints anchored on a permissioned chain (账本锚定)
/// @notice The exchange's operator posts the tree heads of its RFC 9162 log, strictly growing in size. Every anchor
/// after the first must come with a consistency proof from the previous anchor, checked here with the SHA-256
/// precompile: the chain refuses a rewritten history instead of only recording it. A regulator may flag an anchor
/// (for instance when the exchange shows it a checkpoint the chain contradicts); flags are public and final.
contract CheckpointAnchor is AccessControl {
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant REGULATOR_ROLE = keccak256("REGULATOR_ROLE");

    struct Anchor {
        uint64 treeSize;
        bytes32 rootHash;
        bytes32 checkpointHash; // SHA-256 of the checkpoint note as signed by the log (no cosignatures)
        uint64 anchoredAt; // block timestamp
        uint64 blockNumber;
        bool flagged;
    }

    /// @notice The checkpoint origin line of the log this contract anchors (e.g. "exchange.example/ledger").
    string public origin;
    /// @notice The GrantRegistry deployed with this anchor, so an auditor needs only this contract's address.
    address public immutable grantRegistry;
    /// @notice The block this contract was deployed in: where an auditor starts reading its events.
    uint64 public immutable deployedBlock;

    Anchor[] private _anchors;
    mapping(uint64 treeSize => uint256 indexPlusOne) private _indexOfSize;

    event Anchored(uint256 indexed index, uint64 treeSize, bytes32 rootHash, bytes32 checkpointHash);
    event Flagged(uint256 indexed index, address indexed regulator, string reason);

    error SizeNotIncreasing(uint64 latestSize, uint64 proposedSize);
    error EmptyTree();
    error InconsistentWithPrevious(uint64 previousSize, uint64 proposedSize);
    error NoSuchAnchor(uint256 index);
    error AlreadyFlagged(uint256 index);

    constructor(address admin, address operator, address regulator, string memory logOrigin, address registry) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        if (regulator != address(0)) {
            _grantRole(REGULATOR_ROLE, regulator);
        }
        origin = logOrigin;
        grantRegistry = registry;
        deployedBlock = uint64(block.number);
    }

    /// @notice Anchor the tree head (size, root) whose signed checkpoint note hashes to checkpointHash.
    /// @param proof the RFC 9162 consistency proof from the latest anchor's size to treeSize (empty for the first)
    function anchor(uint64 treeSize, bytes32 rootHash, bytes32 checkpointHash, bytes32[] calldata proof)
        external
        onlyRole(OPERATOR_ROLE)
        returns (uint256 index)
    {
        if (treeSize == 0) revert EmptyTree();
        uint256 count = _anchors.length;
        if (count > 0) {
            Anchor storage previous = _anchors[count - 1];
            if (treeSize <= previous.treeSize) revert SizeNotIncreasing(previous.treeSize, treeSize);
            if (!_consistent(previous.treeSize, treeSize, previous.rootHash, rootHash, proof)) {
                revert InconsistentWithPrevious(previous.treeSize, treeSize);
            }
        } else if (proof.length != 0) {
            revert InconsistentWithPrevious(0, treeSize);
        }
        _anchors.push(Anchor(treeSize, rootHash, checkpointHash, uint64(block.timestamp), uint64(block.number), false));
        _indexOfSize[treeSize] = count + 1;
        emit Anchored(count, treeSize, rootHash, checkpointHash);
        return count;
    }

    /// @notice Flag anchor `index` as disputed, with a reason anyone can read.
    function flag(uint256 index, string calldata reason) external onlyRole(REGULATOR_ROLE) {
        if (index >= _anchors.length) revert NoSuchAnchor(index);
        if (_anchors[index].flagged) revert AlreadyFlagged(index);
        _anchors[index].flagged = true;
        emit Flagged(index, msg.sender, reason);
    }

    /// @notice How many anchors were posted.
    function anchorCount() external view returns (uint256) {
        return _anchors.length;
    }

    /// @notice The anchor at `index` (0 is the oldest).
    function anchorAt(uint256 index) external view returns (Anchor memory) {
        if (index >= _anchors.length) revert NoSuchAnchor(index);
        return _anchors[index];
    }

    /// @notice The newest anchor; reverts with NoSuchAnchor(0) before the first.
    function latest() external view returns (Anchor memory) {
        if (_anchors.length == 0) revert NoSuchAnchor(0);
        return _anchors[_anchors.length - 1];
    }

    /// @notice The anchor of tree size `treeSize`, and whether there is one.
    function anchorOfSize(uint64 treeSize) external view returns (bool found, Anchor memory result) {
        uint256 indexPlusOne = _indexOfSize[treeSize];
        if (indexPlusOne == 0) return (false, result);
        return (true, _anchors[indexPlusOne - 1]);
    }

    /// @dev RFC 9162 §2.1.4.2: verify that the tree of size `second` with root `secondRoot` extends the tree of
    /// size `first` with root `firstRoot`. Requires 0 < first < second.
    function _consistent(uint64 first, uint64 second, bytes32 firstRoot, bytes32 secondRoot, bytes32[] calldata proof)
        private
        pure
        returns (bool)
    {
        uint256 length = proof.length;
        if (length == 0) return false; // a larger tree always needs at least one node to prove it
        uint256 start = 0;
        bytes32 fr;
        uint64 fn = first - 1;
        uint64 sn = second - 1;
        if (first & (first - 1) == 0) {
            // the first tree is a perfect subtree of the second: its root is the proof's implicit first node
            fr = firstRoot;
        } else {
            fr = proof[0];
            start = 1;
        }
        bytes32 sr = fr;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        for (uint256 i = start; i < length; ++i) {
            if (sn == 0) return false;
            bytes32 c = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == firstRoot && sr == secondRoot;
    }

    /// @dev RFC 9162 interior node: SHA-256(0x01 || left || right).
    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }
}
