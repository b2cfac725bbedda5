#!/usr/bin/env node
import { main } from "../dist/cli/xenon.js";

await main(process.argv.slice(2));
