/**
 * The C model shared by the lint rules and the concurrency simulator. Start with
 * {@link buildModel} for a set of files of one tree (base or patched), then ask the model for
 * functions, summaries, lock classes and paths. See each module for the details:
 *
 * - parse.ts / prefilter.ts: tree-sitter and the offset-preserving kernel pre-filter
 * - functions.ts / statements.ts / expressions.ts / events.ts / apis.ts: per-function statements and events
 * - declarations.ts: the file model (structs, globals, prototypes, ops initialisers, includes)
 * - locks.ts: lock and field classes
 * - cfg.ts / paths.ts / assumptions.ts / loops.ts: control flow and the path walker
 * - model.ts / context.ts / summaries.ts / build.ts: the tree model and interprocedural summaries
 */
export { buildModel, createModelCache, type BuildOptions, type ModelCache, type SourceReader } from './build.js';
export { buildCfg, callResultKey, normaliseCondition, type Assumption, type Cfg, type CfgEdge, type CfgNode } from './cfg.js';
export { exploreOf, isErrorReturn, isUnknownClass, pathsOf, returnClass, walkContext } from './context.js';
export { extractFile, modelFile, structTag, type FileModel, type GlobalVar, type Include, type OpsBinding, type Prototype, type StructDef } from './declarations.js';
export type * from './events.js';
export { extractFunction, signatureOf, type FunctionModel, type Stmt, type SwitchCase, type Var } from './functions.js';
export { buildTypeEnv, classOfPath, fieldClassOf, lockClassOf, type ClassId, type TypeEnv } from './locks.js';
export { eventsInLoops } from './loops.js';
export {
  allFunctions, findFunction, functionKey, lockClass, resolveCall, summaryOf,
  type FunctionSummary, type LockOutcome, type LockRef, type LockUse, type OrderEdge, type TreeModel,
} from './model.js';
export { disposeParsed, functionErrorStats, loadParser, parseC, type ErrorStats, type ParsedFile, type ParseOptions } from './parse.js';
export {
  cfgOf, explore, walkPaths,
  type CallOutcome, type Exploration, type ExitState, type HeldLock, type PathIssue, type PathResult, type PathStep, type Released, type WalkContext, type WalkOptions,
} from './paths.js';
export { prefilter, type LockAnnotation, type MacroGlobal, type PrefilterResult } from './prefilter.js';
export { computeSummaries, summarise, type SummaryStats } from './summaries.js';
export { textPath } from './textpath.js';
