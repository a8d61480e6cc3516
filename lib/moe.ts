// The moe namespace of the public API (SPEC 5).
import { load, save } from "./ops/moe-checkpoint.js";
import { experts, route } from "./ops/moe.js";

export type { ExpertWeights, Route, RouteOptions } from "./ops/moe.js";
export type { MoeLayer } from "./ops/moe-checkpoint.js";
export const moe = Object.freeze({ route, experts, load, save });
