// Parses Adaptive Cards with Microsoft's own renderer library (npm `adaptivecards`), as
// version 1.4, and reports every problem it finds. Usage: node check_card.js NODE_DIR CARD.json...
// Prints one JSON line per card: {"file", "problems": [...]}; exits 1 when any card has one.
const fs = require("fs");
const path = require("path");
const AC = require(path.join(process.argv[2], "node_modules/adaptivecards/dist/adaptivecards.js"));
let bad = false;
for (const file of process.argv.slice(3)) {
  const json = JSON.parse(fs.readFileSync(file, "utf8"));
  const problems = [];
  if (json.version !== "1.4") problems.push(`version is ${json.version}, not 1.4`);
  const context = new AC.SerializationContext(AC.Versions.v1_4);
  const card = new AC.AdaptiveCard();
  card.parse(json, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(context.getEventAt(i).message);
  const validation = card.validateProperties();
  for (const e of validation.validationEvents || []) problems.push(e.message);
  // What the library would send back must still hold every element we sent.
  const round = card.toJSON(new AC.SerializationContext(AC.Versions.v1_4));
  if ((round.body || []).length !== (json.body || []).length) problems.push("elements were dropped");
  if (problems.length) bad = true;
  console.log(JSON.stringify({ file, problems }));
}
process.exit(bad ? 1 : 0);
