import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

// Constructing the pack starts the analyzer's gRPC server for the Pulumi CLI, which loads this file
// for `pulumi preview --policy-pack policy`; tests import ./policies instead.
new PolicyPack("hephy-doks", { policies });
