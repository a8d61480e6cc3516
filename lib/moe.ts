// The moe namespace of the public API (SPEC 5).
import { experts, route } from "./ops/moe.js";

export type { ExpertWeights, Route, RouteOptions } from "./ops/moe.js";
export const moe = Object.freeze({ route, experts });
