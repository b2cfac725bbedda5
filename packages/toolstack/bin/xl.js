#!/usr/bin/env node
import { main } from "../dist/cli/xl.js";

await main(process.argv.slice(2));
