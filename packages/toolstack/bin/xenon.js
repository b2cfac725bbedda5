#!/usr/bin/env node
import { main } from "../dist/cli/xenon.js";

main(process.argv.slice(2));
