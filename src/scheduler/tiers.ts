/**
 * Which limits apply to a user: its tier (from `scheduler.userTiers`, else the default tier)
 * decides its dispatch weight, running cap and queue cap; a tier that leaves a cap unset uses
 * the scheduler-wide default. The built-in `default` tier has weight 1 unless configured.
 */
import { DEFAULT_TIER, type FarmConfig, type TierConfig } from "../config/schema.js";

export interface UserLimits {
  tier: string;
  weight: number;
  maxRunning: number;
  maxQueued: number;
}

export class Tiers {
  constructor(private readonly config: FarmConfig["scheduler"]) {}

  limitsOf(userId: string): UserLimits {
    // hasOwn: user ids are client input, and "constructor" must not find Object's.
    const { userTiers, tiers } = this.config;
    const tier = (Object.hasOwn(userTiers, userId) && userTiers[userId]) || this.config.defaultTier;
    const spec: Partial<TierConfig> = (Object.hasOwn(tiers, tier) && tiers[tier]) || {};
    return {
      tier: Object.hasOwn(tiers, tier) ? tier : DEFAULT_TIER,
      weight: spec.weight ?? 1,
      maxRunning: spec.maxRunningPerUser ?? this.config.maxRunningPerUser,
      maxQueued: spec.maxQueuedPerUser ?? this.config.maxQueuedPerUser,
    };
  }
}
