#!/usr/bin/env node
import { Command } from 'commander';
import { registerCatalogueCommands } from '../catalogue/cli.ts';
import { registerTrainCommands } from '../train/cli.ts';
import { registerEvalCommands } from '../eval/cli.ts';
import { registerIndexCommands } from '../index/cli.ts';
import { registerServeCommands } from '../serve/cli.ts';
import { registerDemoCommand } from './demo.ts';

const program = new Command('dressmatch')
  .description('Explainable similar-product recommendations with conditional similarity networks')
  .showHelpAfterError();

registerCatalogueCommands(program);
registerTrainCommands(program);
registerEvalCommands(program);
registerIndexCommands(program);
registerServeCommands(program);
registerDemoCommand(program);

await program.parseAsync(process.argv);
